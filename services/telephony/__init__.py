"""The telephony edge: Twilio webhooks and Media Streams <-> the bus. `create_app` lives in `app`."""
