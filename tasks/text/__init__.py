"""Text in: a book read, cleaned, cut and put into words an engine reads well.

    decode      bytes -> str: BOM, UTF-8, then the detected legacy encoding
    read        an upload -> Book, choosing the reader by content and name
    plain, markdown, epub   one reader per format
    book        Book and Chapter, and the helpers readers share
    clean       normalise (one paragraph per block, nothing invisible), has_speakable
    sentences   split clean text into segments of at most max_chars
    spoken      spoken form per language (english, chinese)
    script      which writing system a text is in, and which voices can read it
    plan        one plan per job: chapters, segments, spoken forms, cache keys

Pure functions, linear in the size of their input; no I/O and no audio imports.
"""
