"""A helper with a mutable default argument (`seen=[]`) that it appends to: the list lives on the
function object and grows with every call."""
# accuracy.verdict: leak
# accuracy.root: remember | __defaults__

import time


def remember(event, seen=[]):  # noqa: B006 -- the leak under test
    seen.append(f"{event}:" + "payload " * 40)  # expect: suspect
    return len(seen)


def main():
    for i in range(9000):
        remember(i)
        if i % 30 == 0:
            time.sleep(0.02)
    print(remember("last"))


if __name__ == "__main__":
    main()
