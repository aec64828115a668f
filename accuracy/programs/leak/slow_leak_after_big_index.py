"""A service that builds an index of 1.5 million small tuples at start-up (one-time, not a leak) and then
leaks slowly: every request's parsed query is kept in a module-level history list (~7 MB over the run)."""
# accuracy.verdict: leak
# accuracy.root: module global __main__.QUERY_HISTORY

import time

QUERY_HISTORY = []


def build_index():
    return {n: (n % 97, n % 89) for n in range(1_500_000)}


def serve(index, i):
    query = {"q": f"term{i % 5000}", "terms": [f"t{i}-{k}" for k in range(8)]}
    QUERY_HISTORY.append(query)  # expect: suspect
    return index[(i * 7919) % 1_500_000][0]


def main():
    index = build_index()
    hits = 0
    for i in range(6000):
        hits += serve(index, i)
        if i % 15 == 0:
            time.sleep(0.012)
    print(hits, len(QUERY_HISTORY))


if __name__ == "__main__":
    main()
