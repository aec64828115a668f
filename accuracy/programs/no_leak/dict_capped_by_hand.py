"""A session table in a plain dict, capped by hand: when it holds 2,000 sessions the oldest is dropped.

Growth for the first seconds, then a flat line: the dict never exceeds its cap.
"""
# accuracy.verdict: no-leak

import time

MAX_SESSIONS = 2000
SESSIONS = {}


def open_session(sid):
    SESSIONS[sid] = {"id": sid, "token": f"{sid:032x}", "scratch": bytearray(4096)}
    if len(SESSIONS) > MAX_SESSIONS:
        del SESSIONS[next(iter(SESSIONS))]


def main():
    for sid in range(20_000):
        open_session(sid)
        if sid % 25 == 0:
            time.sleep(0.01)
    print(f"{len(SESSIONS)} sessions open")


if __name__ == "__main__":
    main()
