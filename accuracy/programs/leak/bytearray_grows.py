"""One module-level bytearray that every request extends with +=: a single object growing in size, its
count never changing."""
# accuracy.verdict: leak
# accuracy.root: module global __main__.JOURNAL

import time

JOURNAL = bytearray()


def handle(i):
    global JOURNAL
    JOURNAL += f"{i:08d} committed transaction with a fairly long description\n".encode() * 20  # expect: suspect


def main():
    for i in range(6000):
        handle(i)
        if i % 20 == 0:
            time.sleep(0.02)
    print(len(JOURNAL))


if __name__ == "__main__":
    main()
