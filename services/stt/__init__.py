"""The stt stage: webrtcvad endpointing + Whisper. Entry points: `app.create_app`, `app.main`."""
