"""Photos: proof of work on local disk (behind a storage interface), judged by EXIF and a perceptual hash."""
