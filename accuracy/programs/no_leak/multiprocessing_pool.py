"""A multiprocessing.Pool of 2 workers maps chunks of work in batches; workers keep nothing between tasks."""
# accuracy.verdict: no-leak

import multiprocessing
import time


def word_count(n):
    text = " ".join(f"word{(n * k) % 977}" for k in range(3000))
    counts = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    return len(counts)


def main():
    ctx = multiprocessing.get_context("fork")
    total = 0
    with ctx.Pool(2) as pool:
        for batch in range(30):
            total += sum(pool.map(word_count, range(batch * 40, batch * 40 + 40)))
            time.sleep(0.12)
    print(total)


if __name__ == "__main__":
    main()
