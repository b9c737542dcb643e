"""Comment exports read as a stream of records: WordPress (WXR), Disqus, fedcomments JSON."""
