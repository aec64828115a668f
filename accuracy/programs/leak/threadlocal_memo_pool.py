"""Per-thread memos: each ThreadPoolExecutor worker keeps a threading.local() dict of rendered strings that
is never trimmed. Strings are not tracked by the garbage collector; the dicts that hold them are."""
# accuracy.verdict: leak
# accuracy.root: thread-local | MEMO

import threading
import time
from concurrent.futures import ThreadPoolExecutor

MEMO = threading.local()


def render(i):
    memo = getattr(MEMO, "pages", None)
    if memo is None:
        memo = MEMO.pages = {}
    memo[i] = f"<li>{i}</li>" * 150  # expect: suspect
    return len(memo[i])


def main():
    with ThreadPoolExecutor(max_workers=4) as pool:
        for start in range(0, 8000, 100):
            list(pool.map(render, range(start, start + 100)))
            time.sleep(0.05)
    print("rendered")


if __name__ == "__main__":
    main()
