"""The papers' questions (KG-CLIP, ASU, WTI) answered on the synthetic world's foundation."""
