import streamlit as st

st.title("Streamlit on appyard")
st.write("rendered by streamlit through the proxy")
