"""What Chorus remembers: job state, API keys, registered voices, the segment
cache and the fleet's records in Redis; objects in S3 (``storage``)."""
