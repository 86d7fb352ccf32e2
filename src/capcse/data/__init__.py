"""capcse.data"""
