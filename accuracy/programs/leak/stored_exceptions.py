"""Failed requests are remembered as exception objects in a module-level list: each exception keeps its
traceback, the frames in it and their local variables (a large request body) alive."""
# accuracy.verdict: leak
# accuracy.root: module global __main__.FAILURES

import time

FAILURES = []


def parse(i):
    body = [f"line {i}:{k}" for k in range(60)]  # expect: suspect
    if i % 2 == 0:
        raise ValueError(f"bad request {i}")
    return len(body)


def handle(i):
    try:
        return parse(i)
    except ValueError as exc:
        FAILURES.append(exc)
        return 0


def main():
    for i in range(8000):
        handle(i)
        if i % 30 == 0:
            time.sleep(0.02)
    print(len(FAILURES))


if __name__ == "__main__":
    main()
