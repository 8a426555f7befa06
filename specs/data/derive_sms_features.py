"""Derive numeric columns from the SMS Spam Collection: specs/data/sms_spam.csv -> specs/data/sms_spam_features.csv.

    python specs/data/derive_sms_features.py            # writes specs/data/sms_spam_features.csv
    python specs/data/derive_sms_features.py --check    # exit 1 when the committed file differs from a fresh derivation

Each message keeps its label and text and gains counts computed from the text alone, in the file's order:
``length`` (characters), ``digits`` (ASCII digits), ``uppercase`` (ASCII capital letters), ``urls`` (the
occurrences of ``http`` or ``www.``, any case) and ``currency`` (the signs ``£ $ €``).  The reference spec
``specs/sms_text_and_table.yaml`` feeds the text to one model input and these counts to another.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent
SOURCE = DATA / "sms_spam.csv"
TARGET = DATA / "sms_spam_features.csv"
COLUMNS = ("label", "message", "length", "digits", "uppercase", "urls", "currency")
URL = re.compile(r"http|www\.", re.IGNORECASE)
CURRENCY = "£$€"


def features(message: str) -> list[int]:
    """The counts of one message, in ``COLUMNS``' order after the text."""
    return [
        len(message),
        sum(character in "0123456789" for character in message),
        sum("A" <= character <= "Z" for character in message),
        len(URL.findall(message)),
        sum(character in CURRENCY for character in message),
    ]


def derived() -> str:
    """The derived file's text: the header, then each row of the source with its counts."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    with open(SOURCE, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            writer.writerow([row["label"], row["message"], *features(row["message"])])
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file, write nothing")
    text = derived()
    if parser.parse_args().check:
        same = TARGET.read_text(encoding="utf-8") == text
        print(f"{TARGET.name}: {'up to date' if same else 'differs from a fresh derivation'}")
        return 0 if same else 1
    TARGET.write_text(text, encoding="utf-8", newline="")
    print(f"wrote {TARGET} ({len(text.encode('utf-8')):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
