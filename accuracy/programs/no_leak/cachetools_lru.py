"""User profiles cached in a cachetools.LRUCache(maxsize=1500) in front of a slow lookup.

3,000 distinct users cycle through; the cache fills early and then evicts: bounded, not a leak.
"""
# accuracy.verdict: no-leak
# accuracy.requires: cachetools==5.3.3

import time

import cachetools

PROFILES = cachetools.LRUCache(maxsize=1500)


@cachetools.cached(PROFILES)
def profile(user):
    return {"user": user, "bio": f"user {user} " * 200, "tags": [f"t{user % 13}"] * 20}


def main():
    for request in range(30_000):
        profile((request * 11) % 3000)
        if request % 50 == 0:
            time.sleep(0.01)
    print(f"{len(PROFILES)} profiles cached")


if __name__ == "__main__":
    main()
