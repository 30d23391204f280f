"""`python -m ringline.services.telephony` runs the edge."""

from .app import main

main()
