"""capcse.models"""
