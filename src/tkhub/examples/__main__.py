"""``python -m tkhub.examples --root DIR [--git-url URL --ref REF]``: one sync."""

from tkhub.examples.repository import main

raise SystemExit(main())
