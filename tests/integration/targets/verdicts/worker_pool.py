"""A multiprocessing job whose pool workers each keep every article they see in a module-level list.

The main process only hands out work (pool.map materialises its input once); the leak is in the workers,
which keep the articles as they received them: multiprocessing's code allocated them, unpickling the task.
Run: python worker_pool.py [SECONDS]
"""

import multiprocessing
import sys
import time

SEEN_ARTICLES = []  # filled in each worker process, never emptied


def count_words(article):
    SEEN_ARTICLES.append(article)  # expect: suspect
    return len(article.split())


def articles(n, start):
    for i in range(start, start + n):
        yield f"article {i} " + "lorem ipsum dolor sit amet " * 120


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 12.0
    deadline = time.monotonic() + seconds
    ctx = multiprocessing.get_context("fork")
    total = 0
    start = 0
    with ctx.Pool(2, maxtasksperchild=None) as pool:
        while time.monotonic() < deadline:
            total += sum(pool.map(count_words, articles(400, start), chunksize=20))
            start += 400
            time.sleep(0.05)
    print("words", total)


if __name__ == "__main__":
    main()
