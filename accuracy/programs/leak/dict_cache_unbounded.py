"""A hand-written memo dict on a long-lived service object, keyed by (user, day): nothing ever evicts."""
# accuracy.verdict: leak
# accuracy.root: SERVICE | _memo

import time


class ReportService:
    def __init__(self):
        self._memo = {}

    def daily(self, user, day):
        key = (user, day)
        if key not in self._memo:
            self._memo[key] = [f"{user}:{day}:{h}" for h in range(24)] * 3  # expect: suspect
        return self._memo[key]


SERVICE = ReportService()


def main():
    for i in range(7000):
        SERVICE.daily(i % 50, i)
        if i % 25 == 0:
            time.sleep(0.02)
    print(f"{len(SERVICE._memo)} memo entries")


if __name__ == "__main__":
    main()
