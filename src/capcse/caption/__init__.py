"""capcse.caption"""
