"""Knowledge collections: documents, chunking, embeddings and hybrid (vector + full-text) search."""
