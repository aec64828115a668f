"""Word frequencies over many articles; the index keeps whole articles (seed article 004).

For every word, the index should remember which articles contain it: a title would do, but it stores
the whole rendered article, once per distinct word. What the report should find: a leak, growing
linearly; the top suspect is the line that stores the article into `word_index` (marked `suspect`),
which also allocates what is kept; what keeps it alive is the local `word_index` of main().

Run: python examples/word_frequency.py [ARTICLES]
"""

import random
import sys
import time

WORDS = [f"w{i}" for i in range(1000)]


class Article:
    def __init__(self, title, words):
        self.title = title
        self.words = words


def fetch_article(rng, number):
    time.sleep(0.005)  # the download
    return Article(f"article {number}", [rng.choice(WORDS) for _ in range(200)])


def main():
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    rng = random.Random(4)
    word_index = {}
    for number in range(limit):
        article = fetch_article(rng, number)
        for word in set(article.words):
            # the whole article's text, once per distinct word, where its title would do
            word_index.setdefault(word, []).append(article.title + "\n" + " ".join(article.words))  # expect: suspect
    print(f"indexed {len(word_index)} words from {limit} articles")


if __name__ == "__main__":
    main()
