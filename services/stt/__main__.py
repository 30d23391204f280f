"""`python -m ringline.services.stt` runs the stt service."""

from .app import main

if __name__ == "__main__":
    main()
