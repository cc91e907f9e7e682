"""The dashboard's read model (DESIGN 11): what each page shows, read through the existing services or by
small read-only queries, plus the browser sign-in sessions and the few operator actions.

    sessions.py   sign-in with an API key -> a server-side session in Redis (the cookie holds a random token)
    common.py     skill with its interval and verdict, ages, time helpers shared by the pages
    overview.py   each kind's champion, the last cycle, the newest events
    models.py     the leaderboard and one model's page
    cycles.py     cycle history, one cycle's stages and jobs on a timeline (also polled while it runs)
    serving.py    predictions served, latency percentiles, live accuracy over time
    tuning.py     tuning studies (a documented shape until the tuning service lands)
    replays.py    replay reports (a documented shape until the replay service lands)
    actions.py    force a cycle, activate or archive a model, start a tuning study
"""
