"""capcse.losses"""
