"""Tests of the server side: webhooks, HTTP app, scheduler, metrics."""
