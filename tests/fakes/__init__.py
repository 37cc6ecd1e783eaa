"""Test doubles that are real programs: servers on 127.0.0.1 scripted by the tests."""
