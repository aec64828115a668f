"""An audit trail: every request's record is appended to a module-level list that nothing trims."""
# accuracy.verdict: leak
# accuracy.root: module global __main__.AUDIT_LOG

import time

AUDIT_LOG = []


def handle(i):
    record = {"request": i, "path": f"/orders/{i}", "body": "x" * 2000}
    AUDIT_LOG.append(record)  # expect: suspect
    return len(record["body"])


def main():
    for i in range(6000):
        handle(i)
        if i % 20 == 0:
            time.sleep(0.02)
    print(f"{len(AUDIT_LOG)} records kept")


if __name__ == "__main__":
    main()
