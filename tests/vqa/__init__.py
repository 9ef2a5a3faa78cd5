"""Tests of the VQA-style downstream task (w2v/vqa/)."""
