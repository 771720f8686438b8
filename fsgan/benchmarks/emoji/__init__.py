"""Emoji benchmark: 64x64 RGB emoji in three vendor styles.

Source domain Google Noto, near target Twemoji, far target OpenMoji. `data.make_emoji_data` builds
every split from the pinned npm tarballs (see `paths` for every name, version and constant).
"""
