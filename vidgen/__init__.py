"""ai-video-generator domain core: no Prefect imports here."""
