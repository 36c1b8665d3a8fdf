"""Workers on text: build a corpus, embed it, recommend by similarity."""
