"""Word frequencies over many articles; the index keeps whole articles (seed article 004).

What the report should find: a leak, growing linearly; the top suspect is the line that builds each
article's text (what stays alive), and the index `word_index` that stores whole articles where a title
would do keeps it alive.

Run: python examples/word_frequency.py [ARTICLES]
"""

import random
import sys

WORDS = [f"w{i}" for i in range(3000)]


class Article:
    def __init__(self, title, text):
        self.title = title
        self.text = text

    def get_text(self):
        return self.text


def fetch_article(rng, number):
    body = " ".join(rng.choice(WORDS) for _ in range(2500))  # expect: suspect
    return Article(f"article {number}", body)


def main():
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
    rng = random.Random(4)
    word_index = {}
    for number in range(limit):
        article = fetch_article(rng, number)
        for word in set(article.get_text().split()):
            word_index.setdefault(word, []).append(article)  # expect: stores
    print(f"indexed {len(word_index)} words from {limit} articles")


if __name__ == "__main__":
    main()
