"""Read-along EPUB 3 with Media Overlays: the book's text, its audio per
chapter, and SMIL files that say which sentence (or word) each stretch of
audio speaks, so reading systems highlight the text as it is read."""
