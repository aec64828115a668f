"""A multiprocessing job: 2 forked pool workers count words in articles, and each worker keeps every
article it sees in wordstats.SEEN_ARTICLES. The main process holds nothing; the growth is in the workers."""
# accuracy.verdict: leak
# accuracy.root: module global wordstats.SEEN_ARTICLES

import multiprocessing
import time

import wordstats


def articles(start, count):
    for n in range(start, start + count):
        yield f"article {n}: " + " ".join(f"word{(n * k) % 1013}" for k in range(600))


def main():
    ctx = multiprocessing.get_context("fork")
    total = 0
    with ctx.Pool(2) as pool:
        for batch in range(40):
            total += sum(pool.map(wordstats.count_words, articles(batch * 60, 60), chunksize=10))
            time.sleep(0.1)
    print(total)


if __name__ == "__main__":
    main()
