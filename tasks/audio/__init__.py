"""Audio out: formats (segment WAVs, book encoders with chapters and tags),
loudness (measuring), mastering (trim, fades, pauses, limiter), takes (judging
a take), stream and subtitles. Only the workers import this package; the API
never needs the audio stack to accept a job."""
