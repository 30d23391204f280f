"""Streaming text-to-speech: reply chunks in, 8 kHz mu-law `AgentAudio` out (see app.py)."""
