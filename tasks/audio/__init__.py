"""Audio out: formats (read, encode, chapters, tags), mastering (trim, fades,
loudness, limiter) and subtitles. Only the workers import this package; the API
never needs the audio stack to accept a job."""
