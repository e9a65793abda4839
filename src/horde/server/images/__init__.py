"""Images: source images in, results out, through a storage backend with signed URLs."""
