"""Download and verify MinneApple into a folder: `python data/download_minneapple.py --root DIR`.

The same as `samgap data minneapple --root DIR`. Where the conservancy server cannot be reached
it stops at once and says how to fetch the archive by hand.
"""

import sys

from samgap_lib.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", "minneapple", *sys.argv[1:]]))
