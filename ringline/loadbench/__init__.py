"""`ringline bench --concurrent N`: many simulated Twilio callers at once against the whole stack.

- `sim`: the cloud-sim providers (Deepgram, Claude, Cartesia protocol doubles with the vendors'
  published latencies), each in its own process;
- `callers`: caller processes, each holding several calls paced in real time, reporting what
  their callers heard and the CPU the process used;
- `measure`: CPU and RSS of the services, NATS message rates, percentiles;
- `run`: one concurrency level, or a sweep with a PNG and the knee.
"""
