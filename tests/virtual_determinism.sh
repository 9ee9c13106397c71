#!/usr/bin/env bash
# virtual_determinism.sh LABTEST CONFIG: the same seed twice gives the same
# output, byte for byte (trace hash included); ten seeds give ten hashes.
set -u
labtest=$1
config=$2
a=$("$labtest" -f "$config" --virtual --seed 42 -s 2>&1)
b=$("$labtest" -f "$config" --virtual --seed 42 -s 2>&1)
if [ "$a" != "$b" ]; then
  echo "virtual_determinism: seed 42 gave different output twice:"
  diff <(printf '%s\n' "$a") <(printf '%s\n' "$b")
  exit 1
fi
echo "virtual_determinism: seed 42 twice: identical ($(printf '%s\n' "$a" | wc -l) lines; $(printf '%s\n' "$a" | tail -n 1))"
hashes=$("$labtest" -f "$config" --virtual --seed 1 -r 10 2>&1 | grep -o 'trace hash [0-9a-f]*' | sort -u | wc -l)
if [ "$hashes" -ne 10 ]; then
  echo "virtual_determinism: 10 seeds gave $hashes distinct trace hashes"
  exit 1
fi
echo "virtual_determinism: 10 seeds, 10 distinct trace hashes"
