"""Per request, a callback closing over the request's payload is registered on a list of handlers
that is never cleared: each closure keeps its payload alive."""
# accuracy.verdict: leak
# accuracy.root: module global __main__.ON_SHUTDOWN

import time

ON_SHUTDOWN = []


def handle(i):
    payload = [f"field-{i}-{k}" for k in range(40)]  # expect: suspect

    def cleanup():
        return len(payload)

    ON_SHUTDOWN.append(cleanup)


def main():
    for i in range(6000):
        handle(i)
        if i % 20 == 0:
            time.sleep(0.02)
    print(f"{len(ON_SHUTDOWN)} shutdown hooks")


if __name__ == "__main__":
    main()
