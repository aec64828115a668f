"""Word frequencies over many articles; the index keeps whole articles (seed article 004).

Each article is a downloaded page (its HTML) from which the text is taken. What the report should find:
a leak, growing linearly; the top suspect is the line that makes each article's page, which stays alive
because the index `word_index` stores whole articles where a title would do (the line marked `stores`).

Run: python examples/word_frequency.py [ARTICLES]
"""

import random
import sys

WORDS = [f"w{i}" for i in range(3000)]


class Article:
    def __init__(self, title, html):
        self.title = title
        self.html = html

    def get_text(self):
        return self.html[len("<html><body>") : self.html.index("</body>")]


def fetch_article(rng, number):
    words = " ".join(rng.choice(WORDS) for _ in range(1500))
    page = f"<html><body>{words}</body><footer>{'&nbsp;' * 10000}</footer></html>"  # expect: suspect
    return Article(f"article {number}", page)


def main():
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 800
    rng = random.Random(4)
    word_index = {}
    for number in range(limit):
        article = fetch_article(rng, number)
        for word in set(article.get_text().split()):
            word_index.setdefault(word, []).append(article)  # expect: stores
    print(f"indexed {len(word_index)} words from {limit} articles")


if __name__ == "__main__":
    main()
