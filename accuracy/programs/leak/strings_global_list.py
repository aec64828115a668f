"""Log lines rendered as strings kept in a module-level list "for the crash report": str objects are not
tracked by the garbage collector; the list that holds them is."""
# accuracy.verdict: leak
# accuracy.root: module global __main__.RECENT_LINES

import time

RECENT_LINES = []


def log(i):
    line = f"{i:09d} GET /catalog/item/{i % 9000} 200 {i * 7 % 1500}ms user-agent=Mozilla/5.0 " * 4
    RECENT_LINES.append(line)  # expect: suspect


def main():
    for i in range(12_000):
        log(i)
        if i % 40 == 0:
            time.sleep(0.02)
    print(len(RECENT_LINES))


if __name__ == "__main__":
    main()
