"""Moved: the smoke test is `llmops.ship.smoke` (python -m llmops.ship.smoke URL ...).

`python -m llmops.smoke` still runs it, after one line on stderr saying where it moved;
this name goes away in a later release. Importing this module does nothing else.
"""

import sys

if __name__ == "__main__":
    from llmops.ship.smoke import main

    print(
        "llmops.smoke moved to llmops.ship.smoke: run python -m llmops.ship.smoke", file=sys.stderr
    )
    main()
