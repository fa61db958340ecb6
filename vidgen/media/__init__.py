"""Media work on files with the ffmpeg binary that imageio-ffmpeg ships: nothing is held in memory."""
