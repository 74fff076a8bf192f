"""Knowledge graph of multi-grained action concepts: lexicon, knowledge base, parser, graph."""
