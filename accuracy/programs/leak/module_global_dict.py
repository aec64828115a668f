"""Responses kept in a module-level dict keyed by request id, which is never reused: an unbounded map."""
# accuracy.verdict: leak
# accuracy.root: module global __main__.RESPONSES

import time

RESPONSES = {}


def handle(request_id):
    body = f"<html>{request_id}</html>" * 100
    RESPONSES[request_id] = body  # expect: suspect
    return len(body)


def main():
    for i in range(7000):
        handle(i)
        if i % 25 == 0:
            time.sleep(0.02)
    print(f"{len(RESPONSES)} responses kept")


if __name__ == "__main__":
    main()
