// Read along: a chapter's text as written, from the job's manifest, with the
// sentence being spoken highlighted (and the word, where the manifest has word
// timings for it), the view following it, and a click on a sentence playing
// from its start. The manifest's times are the book's; a chapter's own file
// starts at its chapter's start, so the player's time is shifted by that much.

const FOLLOW_PAUSE_MS = 4000; // after the reader scrolls, the view stops following for this long
const EDGE_S = 0.001; // the manifest's times are rounded to the millisecond: a seek to one lands within it
const SCROLL_KEYS = new Set(["ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End", " "]);

let userScrolledAt = -Infinity;
for (const kind of ["wheel", "touchmove"]) {
  window.addEventListener(kind, () => { userScrolledAt = performance.now(); }, { passive: true });
}
window.addEventListener("keydown", (event) => {
  if (SCROLL_KEYS.has(event.key)) userScrolledAt = performance.now();
});

// The last of `items` (ordered by start) that has started at time t; -1 before the first.
function lastStarted(items, t) {
  let low = 0;
  let high = items.length - 1;
  let found = -1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (items[middle].start <= t) {
      found = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return found;
}

// A sentence's text, its timed words wrapped (each word's text is the
// sentence's own, from its offset: the page shows only what was written).
function sentenceNode(entry) {
  const node = document.createElement("span");
  node.className = "sentence";
  node.id = `seg-${entry.index}`;
  node.tabIndex = 0;
  const words = entry.timing === "word" && Array.isArray(entry.words) ? entry.words : [];
  let at = 0;
  words.forEach((word, k) => {
    if (word.offset < at) return; // out of order: left as plain text
    node.append(entry.text.slice(at, word.offset));
    const span = document.createElement("span");
    span.className = "word";
    span.id = `seg-${entry.index}-w${k}`;
    span.textContent = entry.text.slice(word.offset, word.offset + word.text.length);
    node.append(span);
    at = word.offset + word.text.length;
  });
  node.append(entry.text.slice(at));
  return node;
}

export class ReadAlong {
  // entries: the manifest's segments to show, in order; offset: the book time
  // at which `audio`'s own time is 0.
  constructor(entries, audio, offset) {
    this.entries = entries;
    this.audio = audio;
    this.offset = offset;
    this.sentence = null;
    this.word = null;
    this.frame = 0;
    this.view = document.createElement("div");
    this.view.className = "reading";
    this.nodes = entries.map((entry) => {
      const node = sentenceNode(entry);
      node.addEventListener("click", () => this.playFrom(entry));
      node.addEventListener("keydown", (event) => {
        if (event.key === "Enter") this.playFrom(entry);
      });
      this.view.append(node, " ");
      return node;
    });
    this.update = this.update.bind(this);
    this.tick = this.tick.bind(this);
    for (const kind of ["timeupdate", "seeked", "pause", "ended"]) audio.addEventListener(kind, this.update);
    audio.addEventListener("play", this.tick);
    this.update();
  }

  playFrom(entry) {
    this.audio.currentTime = Math.max(0, entry.start - this.offset);
    this.audio.play().catch(() => {}); // a browser that refuses to play leaves the position set
    this.update();
  }

  // Every frame while playing: timeupdate alone comes only a few times a second.
  tick() {
    cancelAnimationFrame(this.frame);
    this.update();
    if (!this.audio.paused && this.view.isConnected) this.frame = requestAnimationFrame(this.tick);
  }

  update() {
    const t = this.audio.currentTime + this.offset + EDGE_S;
    const index = lastStarted(this.entries, t);
    const entry = this.entries[index];
    const sentence = index < 0 ? null : this.nodes[index];
    let word = null;
    if (entry && entry.timing === "word" && Array.isArray(entry.words)) {
      const k = lastStarted(entry.words, t);
      if (k >= 0) word = sentence.querySelector(`#seg-${entry.index}-w${k}`);
    }
    if (sentence !== this.sentence) {
      this.sentence?.classList.remove("speaking");
      sentence?.classList.add("speaking");
      this.sentence = sentence;
      this.follow(sentence);
    }
    if (word !== this.word) {
      this.word?.classList.remove("speaking");
      word?.classList.add("speaking");
      this.word = word;
    }
  }

  // Keep the sentence in view, unless the reader scrolled a moment ago, or
  // went elsewhere in the page (the text is off screen), or it is in view already.
  follow(node) {
    if (!node || performance.now() - userScrolledAt < FOLLOW_PAUSE_MS) return;
    const box = node.getBoundingClientRect();
    const frame = this.view.getBoundingClientRect();
    if (frame.bottom <= 0 || frame.top >= window.innerHeight) return;
    const inFrame = box.top >= frame.top && box.bottom <= frame.bottom;
    const inWindow = box.top >= 0 && box.bottom <= window.innerHeight;
    if (!(inFrame && inWindow)) node.scrollIntoView({ block: "center", behavior: "smooth" });
  }

  remove() {
    cancelAnimationFrame(this.frame);
    for (const kind of ["timeupdate", "seeked", "pause", "ended"]) this.audio.removeEventListener(kind, this.update);
    this.audio.removeEventListener("play", this.tick);
    this.view.remove();
  }
}
