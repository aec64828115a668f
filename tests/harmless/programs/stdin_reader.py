"""Reads its standard input to the end, line by line, and prints what it read."""

import hashlib
import sys

count = 0
digest = hashlib.sha256()
words = {}
for line in sys.stdin:
    count += 1
    digest.update(line.encode())
    for w in line.split():
        words[w] = words.get(w, 0) + 1
print(count, len(words), digest.hexdigest())
