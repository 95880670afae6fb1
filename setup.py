from setuptools import find_packages, setup

setup(name='mmmsvmamba', version='0.1.0', packages=find_packages(include=['mmmsvmamba', 'mmmsvmamba.*']))
